//! Fleet sizes and CPU shares as Kubernetes quantities: `2GiB` → `2Gi`, 1.5 cores → `1500m`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Bytes as the largest binary unit that divides them exactly (`Gi`, `Mi`, `Ki`, or plain).
pub fn bytes(n: u64) -> Quantity {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "Ti"),
        (1 << 30, "Gi"),
        (1 << 20, "Mi"),
        (1 << 10, "Ki"),
    ];
    for (size, suffix) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return Quantity(format!("{}{suffix}", n / size));
        }
    }
    Quantity(n.to_string())
}

/// CPU cores in millicores (rounded; at least 1m).
pub fn cpu(cores: f64) -> Quantity {
    let milli = (cores * 1000.0).round().max(1.0) as u64;
    if milli.is_multiple_of(1000) {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_the_largest_exact_binary_unit() {
        assert_eq!(bytes(2 << 30).0, "2Gi");
        assert_eq!(bytes(1536 << 20).0, "1536Mi");
        assert_eq!(bytes(64 << 10).0, "64Ki");
        assert_eq!(bytes(1000).0, "1000");
        assert_eq!(bytes(0).0, "0");
    }

    #[test]
    fn cpu_is_whole_cores_or_millicores() {
        assert_eq!(cpu(1.0).0, "1");
        assert_eq!(cpu(0.5).0, "500m");
        assert_eq!(cpu(1.25).0, "1250m");
        assert_eq!(cpu(0.0001).0, "1m");
    }
}

//! Dependency cycles among services, found by depth-first search.

/// Cycles in the graph whose edges go from node `i` to each of `edges[i]` (self-loops are
/// ignored: they are reported on their own). Each cycle is listed once, starting at its
/// lowest node (the first in the file), without repeating that node at the end.
pub(crate) fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnStack,
        Done,
    }

    struct Search<'a> {
        edges: &'a [Vec<usize>],
        state: Vec<State>,
        stack: Vec<usize>,
        cycles: Vec<Vec<usize>>,
    }

    impl Search<'_> {
        fn visit(&mut self, node: usize) {
            self.state[node] = State::OnStack;
            self.stack.push(node);
            for &next in self.edges.get(node).map(Vec::as_slice).unwrap_or_default() {
                if next == node || next >= self.state.len() {
                    continue;
                }
                match self.state[next] {
                    State::New => self.visit(next),
                    State::OnStack => {
                        let from = self.stack.iter().rposition(|&n| n == next).unwrap_or(0);
                        let mut cycle = self.stack[from..].to_vec();
                        let lowest = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &n)| n)
                            .map_or(0, |(i, _)| i);
                        cycle.rotate_left(lowest);
                        if !self.cycles.contains(&cycle) {
                            self.cycles.push(cycle);
                        }
                    }
                    State::Done => {}
                }
            }
            self.stack.pop();
            self.state[node] = State::Done;
        }
    }

    let mut search = Search {
        edges,
        state: vec![State::New; edges.len()],
        stack: Vec::new(),
        cycles: Vec::new(),
    };
    for node in 0..edges.len() {
        if search.state[node] == State::New {
            search.visit(node);
        }
    }
    search.cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cycles_in_a_dag() {
        let edges = vec![vec![1, 2], vec![2], vec![], vec![0]];
        assert!(find_cycles(&edges).is_empty());
    }

    #[test]
    fn two_node_cycle() {
        assert_eq!(find_cycles(&[vec![1], vec![0]]), vec![vec![0, 1]]);
    }

    #[test]
    fn longer_cycle_starts_at_its_first_node() {
        // 3 -> 1 -> 2 -> 3, entered from 0.
        let edges = vec![vec![3], vec![2], vec![3], vec![1]];
        assert_eq!(find_cycles(&edges), vec![vec![1, 2, 3]]);
    }

    #[test]
    fn separate_cycles_are_all_found() {
        let edges = vec![vec![1], vec![0], vec![3], vec![4], vec![2]];
        assert_eq!(find_cycles(&edges), vec![vec![0, 1], vec![2, 3, 4]]);
    }

    #[test]
    fn self_loops_are_left_to_the_caller() {
        assert!(find_cycles(&[vec![0]]).is_empty());
    }

    #[test]
    fn each_cycle_once() {
        // 0 <-> 1, reached twice.
        let edges = vec![vec![1], vec![0], vec![0, 1]];
        assert_eq!(find_cycles(&edges), vec![vec![0, 1]]);
    }
}

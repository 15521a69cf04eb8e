/* ckprobe: what an agent inside a clawkeep sandbox can and cannot do.
 * Built statically by the tests (cc -static) into the busybox test rootfs.
 * Each subcommand prints "<name>: ok" or "<name>: <ERRNO NAME>". */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int dial(const char *ip, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        if (s >= 0) close(s);
        return -1;
    }
    return s;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One chat request whose model name is `name_len` bytes (unique by `i`); the status the
 * gateway answered, 0 when it closed without one. */
static int post_once(const char *ip, int port, const char *path, long i, size_t name_len) {
    int s = dial(ip, port);
    if (s < 0) return 0;
    size_t cap = name_len + 128;
    char *body = malloc(cap);
    int n = snprintf(body, cap, "{\"model\":\"%ld-", i);
    memset(body + n, 'm', name_len);
    n += (int)name_len;
    n += snprintf(body + n, cap - (size_t)n, "\",\"messages\":[]}");
    char head[256];
    int h = snprintf(head, sizeof head,
        "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\nConnection: close\r\n\r\n", path, n);
    int status = 0;
    if (write_all(s, head, (size_t)h) == 0) write_all(s, body, (size_t)n);
    char buf[4096];
    ssize_t r = read(s, buf, sizeof buf - 1);
    if (r > 12 && !strncmp(buf, "HTTP/1.1 ", 9)) status = atoi(buf + 9);
    while (r > 0) r = read(s, buf, sizeof buf);
    free(body);
    close(s);
    return status;
}

static int report(const char *what, long rc) {
    if (rc < 0) {
        printf("%s: %s\n", what, strerrorname_np(errno));
        return 1;
    }
    printf("%s: ok\n", what);
    return 0;
}

/* One raw system call the sandbox must refuse; prints "name: ERRNO" (or "name: ok"). */
static void refused(const char *name, long nr, long a0, long a1, long a2, long a3, long a4) {
    errno = 0;
    long r = syscall(nr, a0, a1, a2, a3, a4, 0L);
    if (r >= 0) printf("%s: ok\n", name);
    else printf("%s: %s\n", name, strerrorname_np(errno));
}

/* Every call and escape the seccomp policy refuses, each with arguments the kernel would
 * otherwise accept or answer differently (so a missing rule shows). */
static int refuse_all(void) {
    refused("io_uring_setup", SYS_io_uring_setup, 1, 0, 0, 0, 0);
    refused("io_uring_enter", SYS_io_uring_enter, 0, 0, 0, 0, 0);
    refused("io_uring_register", SYS_io_uring_register, 0, 0, 0, 0, 0);
    refused("userfaultfd", SYS_userfaultfd, 0, 0, 0, 0, 0);
    refused("bpf", SYS_bpf, 0, 0, 0, 0, 0);
    refused("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0);
    refused("keyctl", SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 1, 0, 0);
    refused("add_key", SYS_add_key, (long)"user", (long)"k", (long)"v", 1, -3);
    refused("request_key", SYS_request_key, (long)"user", (long)"k", 0, 0, 0);
    refused("kexec_load", SYS_kexec_load, 0, 0, 0, 0, 0);
    refused("init_module", SYS_init_module, 0, 0, (long)"", 0, 0);
    refused("finit_module", SYS_finit_module, 0, (long)"", 0, 0, 0);
    refused("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0, 0, 0);
    refused("mount", SYS_mount, (long)"none", (long)"/tmp", (long)"tmpfs", 0, 0);
    refused("setns", SYS_setns, 0, 0, 0, 0, 0);
    refused("unshare", SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0);
    refused("ptrace", SYS_ptrace, PTRACE_TRACEME, 0, 0, 0, 0);
    refused("personality", SYS_personality, ADDR_NO_RANDOMIZE, 0, 0, 0, 0);
    refused("socket-vsock", SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0, 0, 0);
    refused("socket-packet", SYS_socket, AF_PACKET, SOCK_RAW, 0, 0, 0);
    refused("socket-netlink-audit", SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, 0, 0);
    refused("x32-getpid", SYS_getpid | 0x40000000L, 0, 0, 0, 0, 0);
    refused("x32-socket", SYS_socket | 0x40000000L, AF_INET, SOCK_STREAM, 0, 0, 0);
    refused("unknown-1000", 1000, 0, 0, 0, 0, 0);
    long pid = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    if (pid >= 0) printf("clone-newnet: ok\n");
    else printf("clone-newnet: %s\n", strerrorname_np(errno));
    /* What must keep working: a thread-less fork, IPv4, netlink routing, a personality query. */
    report("allowed-socket-inet", socket(AF_INET, SOCK_STREAM, 0));
    report("allowed-socket-netlink-route", socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
    report("allowed-personality-query", personality(0xffffffff));
    printf("refused: done\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: ckprobe mount|unshare|ptrace|clone-ns|connect IP PORT|hog|forkbomb|spin"
                        "|refused|hold IP PORT N|post IP PORT PATH COUNT CONC NAME_BYTES|bindunix PATH|asagent PROGRAM ARG...\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "refused"))
        return refuse_all();
    if (!strcmp(cmd, "mount"))
        return report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(cmd, "unshare"))
        return report("unshare", unshare(CLONE_NEWUSER));
    if (!strcmp(cmd, "ptrace"))
        return report("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    if (!strcmp(cmd, "clone-ns")) {
        long pid = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid(pid, NULL, 0);
        return report("clone-ns", pid);
    }
    if (!strcmp(cmd, "asagent") && argc >= 3) {
        /* Run PROGRAM with the supplementary groups the sandbox's init has (the agent's shared
         * collections'): what `nsenter` into the sandbox leaves out. */
        gid_t groups[64];
        int n = 0;
        char line[4096];
        FILE *f = fopen("/proc/1/status", "r");
        if (!f) { perror("/proc/1/status"); return 1; }
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "Groups:", 7)) {
                char *p = line + 7, *end;
                while (n < 64) {
                    long g = strtol(p, &end, 10);
                    if (end == p) break;
                    groups[n++] = (gid_t)g;
                    p = end;
                }
            }
        fclose(f);
        if (setgroups(n, groups) != 0) { perror("setgroups"); return 1; }
        execv(argv[2], argv + 2);
        perror("execv");
        return 127;
    }
    if (!strcmp(cmd, "bindunix") && argc == 3) {
        /* A named socket in the filesystem: a channel to whoever else can reach the path. */
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
        return report("bindunix", s < 0 ? -1 : bind(s, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(cmd, "connect") && argc == 4) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
        inet_pton(AF_INET, argv[2], &a.sin_addr);
        return report("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(cmd, "hog")) {
        /* Touch memory 1 MiB at a time until the OOM killer stops us. */
        for (long mb = 1;; mb++) {
            char *p = malloc(1 << 20);
            if (!p) { printf("hog: malloc failed at %ld MiB\n", mb); pause(); }
            memset(p, 1, 1 << 20);
            if (mb % 16 == 0) printf("hog: %ld MiB\n", mb);
        }
    }
    if (!strcmp(cmd, "forkbomb")) {
        long ok = 0;
        for (;;) {
            pid_t p = fork();
            if (p == 0) { pause(); _exit(0); }
            if (p < 0) { printf("forkbomb: stopped after %ld forks: %s\n", ok, strerrorname_np(errno)); break; }
            ok++;
        }
        pause();
        return 0;
    }
    if (!strcmp(cmd, "hold") && argc == 5) {
        /* Open N connections and hold them, sending nothing. */
        long open = 0, n = atol(argv[4]);
        for (long i = 0; i < n; i++)
            if (dial(argv[2], atoi(argv[3])) >= 0) open++;
        printf("hold: %ld open\n", open);
        pause();
        return 0;
    }
    if (!strcmp(cmd, "post") && argc == 8) {
        /* COUNT chat requests, CONC at a time, each naming a unique model NAME_BYTES long
         * (each tried until answered, for up to 20 s); prints how many got each kind of
         * answer. */
        signal(SIGPIPE, SIG_IGN);
        long count = atol(argv[5]), conc = atol(argv[6]);
        size_t name_len = (size_t)atol(argv[7]);
        for (long c = 0; c < conc; c++) {
            if (fork() == 0) {
                long answered = 0, refused = 0;
                for (long i = c; i < count; i += conc) {
                    /* A closed connection is tried again, as a persistent client would. */
                    int st = 0;
                    for (int tries = 0; !st && tries < 2000; tries++) {
                        st = post_once(argv[2], atoi(argv[3]), argv[4], i, name_len);
                        if (!st) usleep(10000);
                    }
                    if (st >= 400 && st < 500) refused++;
                    else if (st) answered++;
                }
                printf("post: worker %ld refused=%ld other=%ld\n", c, refused, answered);
                _exit(0);
            }
        }
        while (wait(NULL) > 0) {}
        printf("post: done\n");
        return 0;
    }
    if (!strcmp(cmd, "spin")) {
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    fprintf(stderr, "ckprobe: unknown command %s\n", cmd);
    return 2;
}

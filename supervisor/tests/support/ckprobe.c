/* ckprobe: what an agent inside a clawkeep sandbox can and cannot do.
 * Built statically by the tests (cc -static) into the busybox test rootfs.
 * Each subcommand prints "<name>: ok" or "<name>: <ERRNO NAME>". */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: ckprobe mount|unshare|ptrace|clone-ns|connect IP PORT|hog|forkbomb|spin"
                        "|hold IP PORT N|post IP PORT PATH COUNT CONC NAME_BYTES\n");
        return 2;
    }
    const char *cmd = argv[1];
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

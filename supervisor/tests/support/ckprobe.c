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
        fprintf(stderr, "usage: ckprobe mount|unshare|ptrace|clone-ns|connect IP PORT|hog|forkbomb|spin\n");
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
    if (!strcmp(cmd, "spin")) {
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    fprintf(stderr, "ckprobe: unknown command %s\n", cmd);
    return 2;
}

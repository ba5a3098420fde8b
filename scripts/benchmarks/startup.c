// startup: whole-process start-up, timed without a shell in between (a shell adds the same
// ~1 ms to every side and hides the ratio). Spawns each command (posix_spawn, vfork-style) and
// waits for it, RUNS times, the commands interleaved; prints `CASE MEDIAN_SECONDS` per command.
// Usage: startup RUNS CASE -- cmd args... [-- CASE -- cmd args...]...   (stdout to /dev/null)
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: startup RUNS CASE -- cmd... [-- CASE -- cmd...]\n"); return 2; }
    int runs = atoi(argv[1]);
    const char *names[32];
    char **cmds[32];
    int n = 0;
    for (int i = 2; i < argc && n < 32;) {      // CASE -- cmd args... (up to the next "--" pair)
        names[n] = argv[i];
        cmds[n] = &argv[i + 2];
        int j = i + 2;
        while (j < argc && strcmp(argv[j], "--") != 0) j++;
        if (j < argc) argv[j] = NULL;
        n++;
        i = j + 1;
    }
    double *t = calloc((size_t)runs * (size_t)n, sizeof *t);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    for (int r = 0; r < runs; r++) {
        for (int c = 0; c < n; c++) {
            pid_t pid;
            int status;
            double t0 = now();
            if (posix_spawnp(&pid, cmds[c][0], &fa, NULL, cmds[c], environ) != 0) { perror(cmds[c][0]); return 1; }
            if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "startup: %s failed (status %d)\n", names[c], status);
                return 1;
            }
            t[(size_t)c * runs + r] = now() - t0;
        }
    }
    for (int c = 0; c < n; c++) {
        double *s = t + (size_t)c * runs;
        qsort(s, (size_t)runs, sizeof *s, by_value);
        printf("%s %.7f\n", names[c], runs % 2 ? s[runs / 2] : (s[runs / 2 - 1] + s[runs / 2]) / 2);
    }
    return 0;
}

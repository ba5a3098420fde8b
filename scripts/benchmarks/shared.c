// shared: the memcpy limit for 64 MiB SharedMemory copies (compare shared.lua, shared.py).
// Write: memcpy from a private buffer into the shm mapping. Read: memcpy from the mapping into a
// fresh malloc'd buffer each time (what producing a new string/bytes object costs), freed after.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(void) {
    size_t size = (size_t)64 << 20;
    int reps = 10;
    char name[64];
    snprintf(name, sizeof name, "/luamp_bench_c_%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) { perror("shm"); return 1; }
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    char *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = "0123456789abcdef"[i & 15];
    memcpy(m, data, size);
    double t0 = now();
    for (int r = 0; r < reps; r++) { memcpy(m, data, size); __asm__ volatile("" ::: "memory"); }
    printf("shm_write_64mib_x10 %f\n", now() - t0);
    t0 = now();
    for (int r = 0; r < reps; r++) {
        char *out = malloc(size);
        memcpy(out, m, size);
        __asm__ volatile("" ::: "memory");
        if (out[size - 1] != 'f') return 2;
        free(out);
    }
    printf("shm_read_64mib_x10 %f\n", now() - t0);
    t0 = now();
    char *warm = malloc(size);
    memcpy(warm, m, size);
    t0 = now();
    for (int r = 0; r < reps; r++) { memcpy(warm, m, size); __asm__ volatile("" ::: "memory"); }
    printf("# read into one warm buffer (pure memcpy): %f\n", now() - t0);
    munmap(m, size); close(fd); shm_unlink(name);
    return 0;
}

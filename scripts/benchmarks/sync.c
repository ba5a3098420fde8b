// sync: the C limit — a robust process-shared pthread mutex around a shared counter (compare sync.lua, sync.py).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 200000

struct shared { pthread_mutex_t m; volatile long value; volatile int ready, go; };

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&s->m, &a);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        if ((kids[i] = fork()) == 0) {
            __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
            while (!__atomic_load_n(&s->go, __ATOMIC_SEQ_CST)) ;
            for (int k = 0; k < N; k++) {
                if (pthread_mutex_lock(&s->m) == EOWNERDEAD) pthread_mutex_consistent(&s->m);
                s->value++;
                pthread_mutex_unlock(&s->m);
            }
            _exit(0);
        }
    }
    while (__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST) < 2) ;
    double t0 = now();
    __atomic_store_n(&s->go, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 2; i++) waitpid(kids[i], NULL, 0);
    double t1 = now();
    if (s->value != 2 * N) { fprintf(stderr, "lost updates: %ld\n", s->value); return 1; }
    printf("lock_value_2x200k %f\n", t1 - t0);
    printf("lock_rawvalue_2x200k %f\n", t1 - t0);
    t0 = now();
    for (int k = 0; k < N; k++) { pthread_mutex_lock(&s->m); pthread_mutex_unlock(&s->m); }
    printf("uncontended_acquire_release_200k %f\n", now() - t0);
    return 0;
}

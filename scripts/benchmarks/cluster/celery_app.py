"""scripts/bench cluster, Celery's side: the app (Redis broker and result backend, BENCH_REDIS_URL)."""
import os
from celery import Celery

URL = os.environ["BENCH_REDIS_URL"]
app = Celery("luamp_bench", broker=URL, backend=URL)
app.conf.update(worker_prefetch_multiplier=4, task_acks_late=False, result_expires=600,
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@app.task
def sq(x):
    return x * x


@app.task
def ident(s):
    return s

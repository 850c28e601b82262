"""Running the grading tasks on Dask: an embedded local cluster, or a running scheduler.

Each task is one student's notebook (:func:`crsky.grading.pipeline.grade_one`). Dask
retries a task whose worker was lost or that raised a retryable error; a task that still
fails becomes a row with the reason, never a missing row. A progress bar counts the tasks
and the failures as they happen.
"""

import contextlib
import logging
import os

from tqdm.auto import tqdm


@contextlib.contextmanager
def client_for(workers=None, address=None):
    """A Dask client: connected to the scheduler at ``address``, or to a new local cluster of
    ``workers`` single-threaded worker processes (default: the CPU cores)."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address, timeout="30s") as client:
            yield client
        return
    workers = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_tasks(function, tasks, context, workers=None, address=None, retries=2, quiet=False):
    """``function(task, context)`` for every task on Dask; returns the records in task order.

    The context is sent to the workers once (not with every task). A task that fails after
    its retries gives a record from :func:`failed_record` with the error."""
    from distributed import as_completed

    if not tasks:
        return []
    with client_for(workers, address) as client:
        shared = client.scatter(context, broadcast=True, hash=False)
        futures = [client.submit(function, task, shared, key=f"grade-{task.student}-{task.assignment}-{i}",
                                 retries=retries, pure=False) for i, task in enumerate(tasks)]
        index = {future.key: i for i, future in enumerate(futures)}
        records, failures = [None] * len(tasks), 0
        with tqdm(total=len(tasks), desc="grading", unit="notebook", disable=quiet) as bar:
            for future in as_completed(futures):
                i = index[future.key]
                try:
                    records[i] = future.result()
                except Exception as error:  # the task failed after its retries, or its workers died
                    failures += 1
                    records[i] = failed_record(tasks[i], error)
                bar.update(1)
                bar.set_postfix(failed=failures)
    return records


def failed_record(task, error):
    """The record of a task that could not run to the end (infrastructure, not the submission)."""
    from crsky.grading.records import empty_record

    record = empty_record(task.student, task.assignment)
    record["errors"] = list(task.problems) + [f"grading failed after retries: {type(error).__name__}: {str(error)[:300]}"]
    record["notes"] = list(task.notes)
    return record

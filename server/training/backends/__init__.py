"""The two ways a fit runs: a process of this server per slot (`local`, whose process is
`local_worker`), or a task on a Dask cluster's workers (`dask_backend`, whose task is
`dask_task`). Both run the same fit (server.training.fit) behind the same seam
(server.training.backend)."""

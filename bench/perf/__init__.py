"""``make bench`` (``python -m bench.perf``): our uploads and validation against the peers.

* :mod:`~bench.perf.driver`: the command line, the plan and the order of work;
* :mod:`~bench.perf.environment`: peers installed, machine and versions recorded;
* :mod:`~bench.perf.measure`: one child process per upload, alternating runs, md5 checks;
* :mod:`~bench.perf.contenders`: the uploads themselves (ours and the peers'), one per process;
* :mod:`~bench.perf.validate`: JSONL validation throughput;
* :mod:`~bench.perf.targets`: the targets of DESIGN.md as one table, and the figures it gives;
* :mod:`~bench.perf.report`: ``bench/results/latest.{json,md,png}``.
"""

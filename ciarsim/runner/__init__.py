"""The runner: expands a scenario into jobs, decodes each policy's traces once (cached by content), replays them in
SimPy worlds and stores the results. May import: policies, sim, nn, scenario, trace, io, errors; never report or cli.

Entry points: ``run.run_scenario`` (``ciarsim run``), ``slo.capacity_for_scenario`` (``ciarsim
capacity``), ``checks.validate_file`` (what ``run`` and ``scenarios validate`` check up front).
"""

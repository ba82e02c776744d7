"""Not production code: the local AppZen sandbox and the sample ERP (demo, tests, benchmarks).

Nothing in the production packages imports this package (a layer test checks it); the CLI reaches
it only for ``appzen-etl sandbox`` and ``appzen-etl demo``.
"""

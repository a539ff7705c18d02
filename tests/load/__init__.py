"""Load and reliability tools for the reference servers: a load generator (loadgen),
the threads-against-select() benchmark (bench), and the tests that hold the servers to
real load and bad input (test_*.py, marked ``repo``)."""

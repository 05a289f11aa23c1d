-- luacheck's settings for `make lint` (Debian's lua-check).
std = "lua54"
max_line_length = 120
-- Specs spell out whole messages and command lines.
files["spec"] = { std = "+busted", max_line_length = false }
-- Scenario files are run by `vmlua test`, which gives them `scenario`.
files["scripts/scenarios"] = { read_globals = { "scenario" } }
files["scripts/nested-scenarios"] = { read_globals = { "scenario" } }
exclude_files = { "build", "build-san", "bench/results" }

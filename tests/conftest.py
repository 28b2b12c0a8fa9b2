pytest_plugins = ["tests.support.mosquitto", "tests.support.influx", "tests.support.postgres"]

pytest_plugins = [
    "tests.support.mosquitto",
    "tests.support.influx",
    "tests.support.stores",
    "tests.support.postgres",
]

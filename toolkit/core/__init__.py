"""The core: contract, supervisor, runner, evidence, transports, platform, model."""

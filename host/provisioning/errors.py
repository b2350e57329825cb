"""One exception family for provisioning; each kind has its own exit code so scripts
(and the technician's checklist) can tell them apart. The CLI prints `error: <message>`."""


class ProvisionError(Exception):
    code = "error"
    exit = 1

    def __init__(self, msg, hint=""):
        super().__init__(msg)
        self.msg = msg
        self.hint = hint


class Usage(ProvisionError):
    code, exit = "usage", 2


class NoPort(ProvisionError):
    code, exit = "no_port", 3


class PortBusy(ProvisionError):
    code, exit = "port_busy", 4


class WrongChip(ProvisionError):
    code, exit = "wrong_chip", 5


class NoAnswer(ProvisionError):
    code, exit = "no_answer", 6


class DeviceLocked(ProvisionError):
    code, exit = "locked", 7


class BadConfig(ProvisionError):
    code, exit = "bad_config", 8


class DeviceError(ProvisionError):
    """The device answered but the step failed there (verify mismatch, write error...)."""
    code, exit = "device", 9


class RegistryError(ProvisionError):
    code, exit = "registry", 10


class BuildError(ProvisionError):
    """The firmware build to install is missing or inconsistent."""
    code, exit = "build", 11


class UnsentTaps(ProvisionError):
    """A step would lose taps the depot has not acknowledged (refused unless --force)."""
    code, exit = "unsent_taps", 12


EXIT_CODES = {c.code: c.exit for c in (Usage, NoPort, PortBusy, WrongChip, NoAnswer,
                                       DeviceLocked, BadConfig, DeviceError, RegistryError,
                                       BuildError, UnsentTaps)}

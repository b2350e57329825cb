# The validator application: boot, the tap loop and the §4 decision (see docs/validator.md).

# Offline fare validation for BRT buses — the two commands are `make sim` and `make test`.
# Every target bootstraps .venv from requirements.txt itself (a stamp file makes the second
# run start within seconds).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
STUBS   := $(VENV)/mpstubs
MP      := $(BIN)/micropython
PYTEST_ARGS ?=

.PHONY: sim-board sim-board-firmware lock-flood model gencheck venv test check fwtest hosttest lint typecheck mpycheck firmware bench sim clean verify-vectors powercut-full powercut-app sync-property fleet-day

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	# the MicroPython stubs go in their own folder: mypy uses it as the typeshed for firmware/
	# (the reference board's own build, ESP32_GENERIC_S3; a fresh folder, no stale stubs)
	rm -rf $(STUBS)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --upgrade --target $(STUBS) \
	    $$(grep -E '^micropython-(esp32-esp32-generic-s3|stdlib)-stubs==' requirements.txt)
	@touch $@

## test: static checks, then every test (firmware tests run inside MicroPython)
test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## check: firmware compiles for xtensawin, ruff, type check of firmware/ against the ESP32-S3 stubs
check: mpycheck gencheck lint typecheck

## gencheck: the viper P-256 engine is what tools/gen_p256.py generates
gencheck: $(STAMP)
	$(BIN)/python tools/gen_p256.py --check

mpycheck: $(STAMP)
	$(BIN)/python tools/mpycheck.py firmware

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py firmware

## fwtest: only the firmware tests (under MicroPython)
fwtest: $(STAMP)
	$(BIN)/python -m pytest tests/firmware $(PYTEST_ARGS)

hosttest: $(STAMP)
	$(BIN)/python -m pytest --ignore=tests/firmware $(PYTEST_ARGS)

## firmware: build/firmware/ — .mpy for xtensawin plus manifest.json
firmware: $(STAMP)
	$(BIN)/python tools/build_firmware.py --src firmware --out build/firmware --march xtensawin

## model: the ESP32 cost model of the verifier (modelled figures; build/model.json)
model: $(STAMP)
	$(BIN)/python -m tools.model

## bench: every benchmark in bench/, as a table and build/bench.json
bench: $(STAMP)
	$(BIN)/python -m bench

## verify-vectors: the firmware ES256 verifier under MicroPython over a Wycheproof-layout file
VECTORS ?= tests/vectors/ecdsa_p256_sha256_p1363.json
verify-vectors: $(STAMP)
	$(BIN)/python tools/verify_vectors.py $(VECTORS)

## sim: the simulator (arrives with the validator issue)
sim: $(STAMP)
	$(BIN)/python -m sim

## fleet-day: a day of the Trans-Semarang fleet (10 % sample, ~1 min; FLEET_ARGS=--full for all
# 270 buses), reconciled: exit 0 only with lost 0, doubled 0 and every planted anomaly found
FLEET_ARGS ?=
fleet-day: $(STAMP)
	$(BIN)/python -m sim fleet $(FLEET_ARGS)

## powercut-full: the journal's full power-cut sweep (every flash op + 2,000 seeded random cuts)
# (lines "OSError: N" are littlefs errors printed by the garbage collector when it closes
# files of a vfs that "lost power"; they are expected and filtered out)
powercut-full: $(STAMP)
	bash -o pipefail -c "MICROPYPATH=firmware:sim/vboard $(MP) -X heapsize=1M \
	    tests/firmware/jnl_powercut.py full 2>&1 | grep -v -E '^OSError: [0-9]+\$$'"

## powercut-app: power cuts during taps, 30 sessions (~15 cuts each); make test runs 2
powercut-app: $(STAMP)
	BRT_APP_CUT_SESSIONS=30 $(BIN)/python -m pytest tests/host/test_app_powercut.py -q

## sim-board: a virtual board ready to provision: x64 firmware build, virtual chips, reset by Enter
sim-board: sim-board-firmware
	@mkdir -p build/sim-board
	$(BIN)/python -m sim.serialdev build/sim-board/flash.img --chips

## sim-board-firmware: build/firmware-x64, the firmware for the simulated (x86-64) board
sim-board-firmware: $(STAMP)
	$(BIN)/python tools/build_firmware.py --src firmware --out build/firmware-x64 --march x64

## lock-flood: 500 resets of a locked virtual board, each under a Ctrl-C flood; make test runs 25
lock-flood: $(STAMP)
	BRT_LOCK_FLOOD_RESETS=500 $(BIN)/python -m pytest tests/host/test_lock_flood.py -q -s -k never_reaches

## sync-property: the sync property test with 300 random interleavings; make test runs 25
sync-property: $(STAMP)
	BRT_SYNC_PROP_EXAMPLES=300 $(BIN)/python -m pytest tests/host/test_sync_property.py -q

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache

# Power cuts during journal appends/acks and a LittleFS config rewrite (reduced set; the
# full sweep — every flash operation plus 2,000 seeded random cuts — is `make powercut-full`).
# mp-heapsize: 1M  because the flash model keeps the chip (88 KiB) and a snapshot of it in
#                  RAM; on the board they are the flash chip, not heap
# mp-path: sim/vboard
# mp-timeout: 300
import flashdev
import jnl_powercut as pc


def test_cut_at_every_second_op_and_150_random_points():
    cuts = pc.sweep(every=2, randoms=150, seed0=3)
    assert cuts >= 350


def test_cut_really_interrupts_and_is_not_an_exception():
    # the harness would prove nothing if cuts never happened or firmware could catch them
    assert not issubclass(flashdev.PowerCut, Exception)
    rig, total, tr = pc.count_ops()
    assert total > 400 and len(tr.returned) >= 200 and tr.acked > 0 and tr.cfg >= 10
    assert pc.run_cut(rig, total // 2, 5)
    assert not pc.run_cut(rig, total + 10, 5)  # beyond the workload: no cut, still checks


def test_brownout_storm_of_80_cuts():
    assert pc.storm(80, seed=5, stop=6000) == 80

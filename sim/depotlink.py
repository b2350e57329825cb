"""The simulator's depot: host/depot on loopback, met when the bus is in the depot's Wi-Fi.

A mixin of sim.launcher.SimBoard (it uses the board's world, state dir, clock and status):
the depot knows this validator's secret and serves the operator's bundles; `sync()` drives
the bus into range until a session is done; `revoke()` is the back office publishing a new
deny list.
"""

import time


class DepotMixin:
    def _start_depot(self):
        """The depot host the bus meets when it is in the depot's Wi-Fi (the `d` key /
        `depot on`): host/depot on loopback, knowing this validator's secret and serving
        the operator's bundles; its clock is the world's."""
        from host.depot.server import DepotServer
        from host.depot.store import DepotStore
        store = DepotStore(str(self.state / "depot.sqlite")).open()
        store.register(self.world.device_id, self.world.secret)
        for name, data in self.world.bundles(self.now()).items():
            kind = {"trust.cose": 1, "deny.bin": 2, "fares.cose": 3}[name]
            if store.latest_bundles().get(kind) is None:
                store.add_bundle(kind, 1, data)
        self.depot_store = store
        try:
            self.depot_srv = DepotServer(store, port=self.world.depot_port,
                                         clock=lambda: time.time() + self.offset).start()
        except OSError as e:
            self.depot_srv = None
            self.log("[sim] depot host not started (port %d: %s)" % (self.world.depot_port, e))

    def sync(self, timeout=60):
        """In the depot's Wi-Fi until a sync session is done (and a reboot for new bundles,
        if any, is over); then out of range again. Returns the last status."""
        # first out of range until the validator noticed (a session that is "done" stays
        # done while the bus stays at the depot)
        self.depot(False)
        t_end = time.monotonic() + 10
        while self.status.get("sync") in ("done", "syncing") and time.monotonic() < t_end:
            time.sleep(0.2)
        self.depot(True)
        t_end = time.monotonic() + timeout
        done_at, boots = None, self.boots
        try:
            while time.monotonic() < t_end:
                st = self.status
                if self.boots != boots:     # rebooted for new bundles: wait for its sync
                    done_at, boots = None, self.boots
                elif st.get("sync") == "done" and st.get("ready"):
                    if done_at is None:
                        done_at = time.monotonic()
                    elif time.monotonic() - done_at > 2.5:   # and no reboot followed
                        return st
                time.sleep(0.2)
            from sim.launcher import SimError
            raise SimError("no completed sync within %d s (sync: %s)"
                           % (timeout, self.status.get("sync")))
        finally:
            self.depot(False)

    def revoke(self, wallet, version=None):
        """The back office revokes a demo wallet: the depot gets a new deny-list bundle,
        which the validator installs at its next sync."""
        from host import bundles as hb
        have = self.depot_store.latest_bundles().get(hb.DENY, (1, 0))[0]
        version = version or have + 1
        entries = [hb.deny_entry(b"W", self.world.ids["revoked"][0]),
                   hb.deny_entry(b"W", self.world.ids[wallet][0])]
        raw = hb.sign_bundle(hb.DENY, version, hb.deny_body(entries),
                             self.world.keys["operator"], self.now())
        self.depot_store.add_bundle(hb.DENY, version, raw)
        return version

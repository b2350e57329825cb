"""`make model`: the ESP32 cost model of the firmware (docs/tokens.md "The ESP32 cost model")."""

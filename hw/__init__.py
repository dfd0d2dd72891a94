"""PartSight hardware adapters (cameras, reject outputs) behind small interfaces.

Vendor SDKs (pypylon, gpiod, pymodbus) are imported lazily by the adapter that needs them, and
their errors are mapped to PartSight's own at this boundary. Never imports torch.
"""

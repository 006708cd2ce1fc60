#!/bin/sh
# ncbench health: confirmed failures only
scontrol update NodeName=vm#1 State=DRAIN Reason="ncbench: NCB-NIC-LOOPBACK rail0 0.10x run=20261201T162333Z-vm-health-nightly-12220"

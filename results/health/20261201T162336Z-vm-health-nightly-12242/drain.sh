#!/bin/sh
# ncbench health: confirmed failures only

#!/usr/bin/env bash
# The system tools the tests use that PyPI does not provide, installed with apt where missing.
# .ci/run calls this; on a machine without them the tests that need one skip with the reason
# "missing tool: NAME (install: scripts/install-tools.sh)".
#   g++, make      csim (and Verilator's model builds in cosim)
#   tclsh          the generated Tcl checked against a Vitis stand-in
#   iverilog       RTL cosim with --sim icarus
#   openFPGALoader its real "no board" error in the flash tests
#   ccache         only speed: Verilator's runtime is not recompiled for every model
set -euo pipefail

packages=""
need() {   # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || packages+=" $2"
}
need g++ g++
need make make
need tclsh tcl
need iverilog iverilog
need vvp iverilog
need openFPGALoader openfpgaloader
need ccache ccache

if [ -z "$packages" ]; then
    echo "install-tools: every tool is installed"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-tools: need root or sudo to apt-get install$packages" >&2; exit 1; }
    sudo="sudo"
fi
echo "install-tools: apt-get install$packages"
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq $(echo $packages | tr ' ' '\n' | sort -u)

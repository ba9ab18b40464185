#!/bin/sh
# The Debian packages the test suite uses besides its Python packages, installed by `make test`
# (target system-deps) when they are missing:
#   chromium               tests/test_ui.py drives the MLflow UI with headless /usr/bin/chromium
#   dataset-fashion-mnist  tests/test_data_idx.py reads /usr/share/datasets/fashion-mnist/
#   postgresql             tests/test_postgres.py runs a throwaway server with initdb/pg_ctl from
#                          /usr/lib/postgresql/<version>/bin (tests/support/postgres.py)
# Installs them with apt-get when it may (root, passwordless sudo, or sudo at a terminal, which
# asks for the password); otherwise it stops with one line naming the command to run, before
# anything else of `make test` runs.
#
# Environment, so that the missing and the refused paths can be tried on a machine that has
# both (tests/test_fresh_clone.py): SYSTEM_DEPS_CHROMIUM (the browser's path),
# SYSTEM_DEPS_FASHION_MNIST (the data set's folder), SYSTEM_DEPS_POSTGRESQL (the folder holding
# <version>/bin/initdb; tests/support/postgres.py reads the same variable), SYSTEM_DEPS_DRY_RUN=1
# (print the install command instead of running it).
set -eu

chromium=${SYSTEM_DEPS_CHROMIUM:-/usr/bin/chromium}
fashion=${SYSTEM_DEPS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
postgresql=${SYSTEM_DEPS_POSTGRESQL:-/usr/lib/postgresql}

missing=""
[ -x "$chromium" ] || missing="$missing chromium"
for file in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ ! -f "$fashion/$file.gz" ] && [ ! -f "$fashion/$file" ]; then
    missing="$missing dataset-fashion-mnist"
    break
  fi
done
# the server's programs (the package "postgresql" depends on postgresql-<version>), any version
server=""
for initdb in "$postgresql"/*/bin/initdb; do
  if [ -x "$initdb" ] && [ -x "${initdb%/initdb}/pg_ctl" ]; then server=found; break; fi
done
[ -n "$server" ] || missing="$missing postgresql"
[ -n "$missing" ] || exit 0
missing=${missing# }

if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test needs $missing (Debian packages; no apt-get here): install Chromium as $chromium, the four Fashion-MNIST IDX files into $fashion and PostgreSQL's server (initdb, pg_ctl) under $postgresql/<version>/bin, then run make test again" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
  sudo="sudo "
else
  echo "make test needs Debian's $missing: run  sudo apt-get update && sudo apt-get install -y $missing  and then make test again" >&2
  exit 1
fi

install="${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing"
if [ "${SYSTEM_DEPS_DRY_RUN:-}" = 1 ]; then
  echo "would run: $install"
  exit 0
fi
echo "installing what the tests need: $missing"
${sudo}apt-get update
# shellcheck disable=SC2086 # $missing is a list of package names
${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing

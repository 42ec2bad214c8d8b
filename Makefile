# PneumoScan: `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test test-fast bench installer clean check-qt-libs system-deps

install: $(STAMP)

# Re-installs only when the project's metadata changed; otherwise a no-op.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Qt's xcb platform plugin needs these system libraries on a Linux desktop.
check-qt-libs:
	@if [ "$$(uname)" = "Linux" ] && [ -z "$$QT_QPA_PLATFORM" ] && command -v ldconfig >/dev/null; then \
	  missing=""; \
	  for lib in libxcb-cursor.so.0 libxkbcommon-x11.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 \
	             libxcb-image.so.0 libxcb-render-util.so.0 libxcb-shape.so.0 libEGL.so.1 libfontconfig.so.1; do \
	    ldconfig -p | grep -q "$$lib" || missing="$$missing $$lib"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    echo "Qt needs these system libraries, missing here:$$missing"; \
	    echo "On Debian/Ubuntu: sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libegl1 libfontconfig1"; \
	    exit 1; \
	  fi; \
	fi

# The PACS tests need Orthanc (a real PACS) and dcmtk (storescu/echoscu). Installed when
# missing and running as root on Debian/Ubuntu; otherwise says what is missing (those tests skip).
SYSTEM_DEPS := Orthanc:orthanc storescu:dcmtk echoscu:dcmtk
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  command -v $${dep%%:*} >/dev/null || [ -x /usr/sbin/$${dep%%:*} ] || missing="$$missing $${dep#*:}"; \
	done; missing=$$(echo $$missing | tr ' ' '\n' | sort -u | xargs); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages for the PACS tests: $$missing"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } || \
	      echo "could not install $$missing (offline?): the PACS tests that need them will be skipped"; \
	  else \
	    echo "PACS tests will be skipped: missing system packages: $$missing (Debian/Ubuntu: sudo apt-get install -y $$missing)"; \
	  fi; \
	fi

run: install check-qt-libs
	$(BIN)/pneumoscan $(FOLDER)

test: install system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

test-fast: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not slow and not installer"

bench: install
	$(BIN)/python bench/screening.py
	@if [ -f bench/startup.py ]; then $(BIN)/python bench/startup.py; fi
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/reading.py

installer: install
	$(BIN)/pyinstaller --noconfirm --clean build_installer.spec
	@if [ -f packaging/linux/pack.sh ] && [ "$$(uname)" = "Linux" ]; then bash packaging/linux/pack.sh; fi

clean:
	rm -rf build dist .pytest_cache

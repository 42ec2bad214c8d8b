"""Entry script of the frozen PneumoScan bundle (see build_installer.spec).

Kept tiny on purpose: everything lives in `desktop.app.main`, so the bundle
and `pneumoscan` from a source install behave the same.
"""
import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # no-op unless a library spawns processes
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ start-up log

    from desktop.app import main

    sys.exit(main())

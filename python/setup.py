"""Builds the C library into the wheel.

The package is the ctypes module semctr/__init__.py plus libsemctr.so, which
this script makes with the repository's own Makefile (the same sources and
flags as `make`, plus -fPIC), so nothing is compiled twice or differently.
pip (>= 21.3) builds ./python in place, so the repository is its parent;
SEMCTR_SOURCE names it otherwise.
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        src = os.environ.get("SEMCTR_SOURCE") or os.path.dirname(HERE)
        if not os.path.exists(os.path.join(src, "Makefile")) or not os.path.isdir(os.path.join(src, "src")):
            raise SystemExit(
                "semctr: the C sources are not at %s (pip copied python/ elsewhere?); "
                "set SEMCTR_SOURCE to the repository root" % src)
        build = os.path.abspath(os.path.join(self.build_lib, "..", "semctr-c"))
        jobs = os.environ.get("SEMCTR_JOBS", str(min(os.cpu_count() or 1, 4)))
        cflags = os.environ.get("SEMCTR_CFLAGS", "-O2 -march=native") + " -fPIC"
        subprocess.check_call(["make", "-C", src, "-j" + jobs, "BUILD=" + build, "CFLAGS=" + cflags,
                               build + "/libsemctr.so"])
        dst = os.path.join(self.build_lib, "semctr")
        os.makedirs(dst, exist_ok=True)
        shutil.copy2(os.path.join(build, "libsemctr.so"), os.path.join(dst, "libsemctr.so"))


class BinaryDistribution(Distribution):
    # The wheel holds a compiled library: tag it for this platform.
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)

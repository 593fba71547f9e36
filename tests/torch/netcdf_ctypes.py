"""A minimal netCDF reader over libnetcdf's C API (ctypes), for the fixtures: Debian ships no netCDF4,
h5py or xarray for the system Python. Independent of grcnn's C++ reader except for the C library."""
import ctypes
import ctypes.util

import numpy as np

_lib = ctypes.CDLL(ctypes.util.find_library("netcdf") or "libnetcdf.so.19")
NC_FLOAT, NC_DOUBLE, NC_INT64, NC_STRING = 5, 6, 10, 12


def _check(rc, what):
    if rc != 0:
        raise RuntimeError(f"netcdf: {what}: {_lib.nc_strerror(rc)}")


class Dataset:
    def __init__(self, path):
        self.id = ctypes.c_int()
        _check(_lib.nc_open(str(path).encode(), 0, ctypes.byref(self.id)), f"open {path}")

    def _var(self, name):
        v = ctypes.c_int()
        _check(_lib.nc_inq_varid(self.id, name.encode(), ctypes.byref(v)), name)
        t, nd = ctypes.c_int(), ctypes.c_int()
        dims = (ctypes.c_int * 8)()
        _check(_lib.nc_inq_var(self.id, v, None, ctypes.byref(t), ctypes.byref(nd), dims, None), name)
        names, shape = [], []
        for d in dims[: nd.value]:
            buf, ln = ctypes.create_string_buffer(257), ctypes.c_size_t()
            _check(_lib.nc_inq_dim(self.id, d, buf, ctypes.byref(ln)), name)
            names.append(buf.value.decode())
            shape.append(ln.value)
        return v, t.value, names, shape

    def dims(self, name):
        return self._var(name)[2]

    def read(self, name):
        v, t, _, shape = self._var(name)
        n = int(np.prod(shape)) if shape else 1
        if t == NC_STRING:
            raw = (ctypes.c_char_p * n)()
            _check(_lib.nc_get_var_string(self.id, v, raw), name)
            out = [s.decode() for s in raw]
            _lib.nc_free_string(ctypes.c_size_t(n), raw)
            return np.array(out, dtype=object).reshape(shape)
        out = np.empty(shape, dtype=np.float64 if t in (NC_FLOAT, NC_DOUBLE) else np.int64)
        getter = _lib.nc_get_var_double if out.dtype == np.float64 else _lib.nc_get_var_longlong
        _check(getter(self.id, v, out.ctypes.data_as(ctypes.c_void_p)), name)
        return out

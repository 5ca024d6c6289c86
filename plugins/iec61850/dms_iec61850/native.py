"""libiec61850's client API through ctypes, for the client process (:mod:`dms_iec61850.worker`).

Why not the SWIG binding (pyiec61850-ng) here: it keeps the GIL during every blocking call, and
its report and CommandTermination handlers are Python directors that need the GIL on
libiec61850's receive thread. A report that arrives while a request is outstanding (an RCB write,
a poll read, a select or operate) then blocks the receive thread, which therefore never delivers
the response: the request stalls until its timeout. ctypes releases the GIL around every foreign
call, and a ``CFUNCTYPE`` callback takes it only while it runs, so reports, requests and commands
share one association without stalls.

The library is the very ``libiec61850`` shared object that pyiec61850-ng bundles (loaded by the
SWIG module first, so there is one copy in the process); constants come from the SWIG module.
Declarations follow libiec61850 1.6 (``iec61850_client.h``, ``mms_value.h``, ``mms_type_spec.h``).
"""

from __future__ import annotations

import ctypes
import glob
import os
from ctypes import POINTER, c_bool, c_char_p, c_float, c_int, c_int32, c_int64, c_uint16, c_uint32, c_uint64, c_void_p

from .lib import iec

__all__ = ["lib", "REPORT_CALLBACK", "TERMINATION_CALLBACK", "LastApplError", "string_list"]


def _library_path() -> str:
    import pyiec61850

    package = os.path.dirname(os.path.abspath(pyiec61850.__file__))
    candidates = sorted(glob.glob(os.path.join(package, "..", "pyiec61850_ng.libs", "libiec61850*.so*")))
    candidates += sorted(glob.glob(os.path.join(package, "libiec61850*.so*")))
    if not candidates:
        raise ImportError(f"no libiec61850 shared library next to {package}")
    return candidates[0]


class LastApplError(ctypes.Structure):
    _fields_ = [("ctlNum", c_int), ("error", c_int), ("addCause", c_int)]


#: ``void (*ReportCallbackFunction)(void* parameter, ClientReport report)``
REPORT_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
#: ``void (*CommandTerminationHandler)(void* parameter, ControlObjectClient controlClient)``
TERMINATION_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)

lib = ctypes.CDLL(_library_path())
_ERR = POINTER(c_int)

_SIGNATURES = {
    # connection
    "IedConnection_create": (c_void_p,),
    "IedConnection_destroy": (None, c_void_p),
    "IedConnection_setConnectTimeout": (None, c_void_p, c_uint32),
    "IedConnection_setRequestTimeout": (None, c_void_p, c_uint32),
    "IedConnection_connect": (None, c_void_p, _ERR, c_char_p, c_int),
    "IedConnection_close": (None, c_void_p),
    "IedConnection_getState": (c_int, c_void_p),
    "IedConnection_readObject": (c_void_p, c_void_p, _ERR, c_char_p, c_int),
    "IedConnection_getVariableSpecification": (c_void_p, c_void_p, _ERR, c_char_p, c_int),
    "IedConnection_getLogicalNodeDirectory": (c_void_p, c_void_p, _ERR, c_char_p, c_int),
    "IedConnection_getDataSetDirectory": (c_void_p, c_void_p, _ERR, c_char_p, POINTER(c_bool)),
    # reporting
    "IedConnection_getRCBValues": (c_void_p, c_void_p, _ERR, c_char_p, c_void_p),
    "IedConnection_setRCBValues": (None, c_void_p, _ERR, c_void_p, c_uint32, c_bool),
    "IedConnection_installReportHandler": (None, c_void_p, c_char_p, c_char_p, REPORT_CALLBACK, c_void_p),
    "IedConnection_uninstallReportHandler": (None, c_void_p, c_char_p),
    "ClientReportControlBlock_destroy": (None, c_void_p),
    "ClientReportControlBlock_isBuffered": (c_bool, c_void_p),
    "ClientReportControlBlock_getRptId": (c_char_p, c_void_p),
    "ClientReportControlBlock_getRptEna": (c_bool, c_void_p),
    "ClientReportControlBlock_setRptEna": (None, c_void_p, c_bool),
    "ClientReportControlBlock_setResv": (None, c_void_p, c_bool),
    "ClientReportControlBlock_getDataSetReference": (c_char_p, c_void_p),
    "ClientReportControlBlock_setOptFlds": (None, c_void_p, c_int),
    "ClientReportControlBlock_setBufTm": (None, c_void_p, c_uint32),
    "ClientReportControlBlock_setTrgOps": (None, c_void_p, c_int),
    "ClientReportControlBlock_getTrgOps": (c_int, c_void_p),
    "ClientReportControlBlock_setIntgPd": (None, c_void_p, c_uint32),
    "ClientReportControlBlock_setGI": (None, c_void_p, c_bool),
    "ClientReportControlBlock_setPurgeBuf": (None, c_void_p, c_bool),
    "ClientReportControlBlock_setEntryId": (None, c_void_p, c_void_p),
    "ClientReport_getDataSetValues": (c_void_p, c_void_p),
    "ClientReport_getReasonForInclusion": (c_int, c_void_p, c_int),
    "ClientReport_hasTimestamp": (c_bool, c_void_p),
    "ClientReport_getTimestamp": (c_uint64, c_void_p),
    "ClientReport_getEntryId": (c_void_p, c_void_p),
    "ClientReport_hasBufOvfl": (c_bool, c_void_p),
    "ClientReport_getBufOvfl": (c_bool, c_void_p),
    # linked lists, type specifications, values
    "LinkedList_getNext": (c_void_p, c_void_p),
    "LinkedList_getData": (c_void_p, c_void_p),
    "LinkedList_destroy": (None, c_void_p),
    "MmsVariableSpecification_getChildSpecificationByName": (c_void_p, c_void_p, c_char_p, POINTER(c_int)),
    "MmsVariableSpecification_destroy": (None, c_void_p),
    "MmsValue_getType": (c_int, c_void_p),
    "MmsValue_getElement": (c_void_p, c_void_p, c_int),
    "MmsValue_getArraySize": (c_uint32, c_void_p),
    "MmsValue_toFloat": (c_float, c_void_p),
    "MmsValue_toDouble": (ctypes.c_double, c_void_p),
    "MmsValue_getBoolean": (c_bool, c_void_p),
    "MmsValue_toInt64": (c_int64, c_void_p),
    "MmsValue_toUint32": (c_uint32, c_void_p),
    "MmsValue_getBitStringSize": (c_int, c_void_p),
    "MmsValue_getUtcTimeInMs": (c_uint64, c_void_p),
    "MmsValue_getOctetStringSize": (c_int, c_void_p),
    "MmsValue_getOctetStringBuffer": (c_void_p, c_void_p),
    "MmsValue_newOctetString": (c_void_p, c_int, c_int),
    "MmsValue_setOctetString": (None, c_void_p, c_char_p, c_int),
    "MmsValue_newBoolean": (c_void_p, c_bool),
    "MmsValue_newIntegerFromInt32": (c_void_p, c_int32),
    "MmsValue_delete": (None, c_void_p),
    "Quality_fromMmsValue": (c_uint16, c_void_p),
    "Dbpos_fromMmsValue": (c_int, c_void_p),
    # controls
    "ControlObjectClient_create": (c_void_p, c_char_p, c_void_p),
    "ControlObjectClient_destroy": (None, c_void_p),
    "ControlObjectClient_getControlModel": (c_int, c_void_p),
    "ControlObjectClient_select": (c_bool, c_void_p),
    "ControlObjectClient_selectWithValue": (c_bool, c_void_p, c_void_p),
    "ControlObjectClient_operate": (c_bool, c_void_p, c_void_p, c_uint64),
    "ControlObjectClient_getLastApplError": (LastApplError, c_void_p),
    "ControlObjectClient_setCommandTerminationHandler": (None, c_void_p, TERMINATION_CALLBACK, c_void_p),
}

for _name, (_restype, *_argtypes) in _SIGNATURES.items():
    _function = getattr(lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes


def string_list(linked_list: int | None) -> list[str]:
    """The ``char*`` elements of a libiec61850 ``LinkedList``; destroys the list (and its strings)."""
    if not linked_list:
        return []
    items = []
    element = lib.LinkedList_getNext(linked_list)
    while element:
        data = lib.LinkedList_getData(element)
        if data:
            items.append(ctypes.string_at(data).decode("utf-8", "replace"))
        element = lib.LinkedList_getNext(element)
    lib.LinkedList_destroy(linked_list)
    return items


# re-exported constants (values of the SWIG module, i.e. of the same library build)
MMS_FLOAT, MMS_BOOLEAN, MMS_INTEGER, MMS_UNSIGNED, MMS_BIT_STRING = (
    iec.MMS_FLOAT, iec.MMS_BOOLEAN, iec.MMS_INTEGER, iec.MMS_UNSIGNED, iec.MMS_BIT_STRING)

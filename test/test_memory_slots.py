"""Contracts of the ID -> row table and the row normalisation shared by memory and diagnostics."""

from __future__ import annotations

import numpy as np

from assoc_logger_ros.tracking.memory import SlotTable, normalise_rows


def test_slot_rows_are_allocated_once_and_unknown_ids_give_minus_one():
    """A new ID gets one row (fresh once, even when repeated); unknown IDs map to -1."""
    slots = SlotTable()
    rows, fresh = slots.ensure([5, 7, 5])
    assert rows.tolist() == [0, 1, 0] and fresh.tolist() == [True, True, False]
    assert slots.rows([7, 5, 9, -1]).tolist() == [1, 0, -1, -1]
    rows, fresh = slots.ensure([7, 8])
    assert rows.tolist() == [1, 2] and fresh.tolist() == [False, True]
    assert len(slots) == 3 and slots.capacity == 3


def test_slot_ids_keep_insertion_order_and_freed_rows_are_reused_last_first():
    """ids() lists IDs in the order they arrived; freed rows are reused last-freed first."""
    slots = SlotTable()
    slots.ensure([30, 10, 20, -4])
    assert slots.ids().tolist() == [30, 10, 20, -4]
    freed = slots.remove([10, 99, 30, 10])               # unknown and repeated IDs: ignored
    assert freed.tolist() == [1, 0]
    assert slots.ids().tolist() == [20, -4] and slots.rows([10, 30]).tolist() == [-1, -1]
    rows, fresh = slots.ensure([40, 50, 60])
    assert rows.tolist() == [0, 1, 4] and fresh.all()
    assert slots.ids().tolist() == [20, -4, 40, 50, 60]
    assert slots.id_of_rows().tolist() == [40, 50, 20, -4, 60]
    assert slots.ids_of([4, 2]).tolist() == [20, 60]
    slots.clear()
    assert len(slots) == 0 and slots.rows([20]).tolist() == [-1] and not slots.used().any()
    assert slots.ensure([1])[0].tolist() == [0]


def test_normalise_rows_matches_the_plain_formula_and_flags_unusable_rows():
    """Unit rows equal x / max|x| / norm in float64 bit for bit; NaN, inf, zero rows are zero."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(6, 33)) * np.array([[1e-30], [1], [1e30], [1], [1], [1]])).astype(
        np.float32)
    x[3] = 0.0
    x[4, 2] = np.nan
    x[5, 0] = np.inf
    out, ok = normalise_rows(x)
    assert out.dtype == np.float32 and ok.tolist() == [True, True, True, False, False, False]
    for i in range(3):
        r = x[i].astype(np.float64)
        r = r / np.abs(r).max()
        np.testing.assert_array_equal(out[i], (r / np.linalg.norm(r)).astype(np.float32))
    assert not out[3:].any()

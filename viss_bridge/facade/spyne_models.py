"""Spyne types generated from dataset manifests.

Each dataset gets a typed record (``<dataset>_record``) so every WSDL says
exactly what a record holds: no xs:anyType, no string blobs. Lists become
repeated elements of a nested type, which zeep maps to Python lists and JAXB
to ``List<...>``. Types are built once per catalog version (Spyne classes
built on the fly are never freed) and converted to from plain dicts here.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from spyne import Boolean, ComplexModel, Date, DateTime, Decimal, Integer64, Unicode
from spyne.model.complex import XmlAttribute, XmlData

from viss_bridge.catalog.manifest import Dataset, Field, FieldType

_SCALARS = {
    FieldType.STRING: Unicode,
    FieldType.INTEGER: Integer64,
    FieldType.DECIMAL: Decimal,
    FieldType.BOOLEAN: Boolean,
    FieldType.DATE: Date,
    FieldType.DATETIME: DateTime,
}


def scalar_type(field: Field, *, required: bool | None = None, repeated: bool = False) -> Any:
    """The Spyne type of a scalar field (or of a list of values' elements, ``repeated``).

    ``enum`` becomes a named xs:simpleType with xs:enumeration facets (JAXB and wsdl.exe make
    enums of it); ``nillable`` makes the element always present, xsi:nil when there is no value.
    """
    value_type = field.value_type
    assert value_type is not None
    base = _SCALARS[value_type]
    need = field.required if required is None else required
    kwargs: dict[str, Any] = {"min_occurs": 1 if need else 0, "nillable": False}
    if field.nillable and not repeated:
        kwargs.update(nillable=True, min_occurs=1 if required is None or required else 0)
    if repeated:
        kwargs.update(min_occurs=0, max_occurs="unbounded")
    if field.description:
        kwargs["doc"] = field.description
    if field.enum is not None:
        kwargs["values"] = list(field.enum)
    if value_type is FieldType.STRING and field.max_length:
        return Unicode(field.max_length, **kwargs)
    if "values" in kwargs:
        return base(**kwargs)
    return _plain(base, tuple(sorted(kwargs.items())))


_PLAIN: dict[tuple[Any, ...], Any] = {}
_PLAIN_LOCK = threading.Lock()


def _plain(base: Any, options: tuple[tuple[str, Any], ...]) -> Any:
    """One customized class per (type, occurrence, nillable, documentation), shared by every field that needs it.

    Spyne makes three classes per ``customize`` call and never frees them; with all of VISS (745
    manifests, ~20,000 fields) that was most of a worker's memory, and every reload added the
    changed manifests' share again. An unrestricted customization keeps its base type's name in
    the schema (Spyne names only restricted types after their field), so sharing it changes no
    WSDL; restricted ones (``max_length``, ``enum``) are still made per field.
    """
    key = (base, options)
    with _PLAIN_LOCK:
        cls = _PLAIN.get(key)
        if cls is None:
            cls = _PLAIN[key] = base.customize(**dict(options))
        return cls


class RecordModels:
    """The Spyne classes of one dataset plus a dict -> instance converter.

    Objects and lists of objects become complex types of their own, named by their path
    (``csdd_vehicle_owners_contacts``), at any depth; lists of values repeated simple elements.
    """

    def __init__(self, dataset: Dataset, namespace: str, all_optional: bool = False) -> None:
        self.dataset = dataset
        self.namespace = namespace
        # all_optional: every non-key field may be absent (a generic face where permissions narrow answers)
        self.all_optional = all_optional
        self._originals: dict[int, type[ComplexModel]] = {}
        self.record = self._complex(f"{dataset.dataset}_record", dataset.fields, prefix=dataset.dataset)
        self._convert = self._converter(self.record, dataset.fields)

    def _complex(self, type_name: str, fields: tuple[Field, ...], prefix: str) -> type[ComplexModel]:
        members: dict[str, Any] = {}
        top = prefix == self.dataset.dataset
        for field in fields:
            optional_here = self.all_optional and top
            if field.fields is not None:  # an object or a list of objects
                item = self._complex(f"{prefix}_{field.name}", field.fields, prefix=f"{prefix}_{field.name}")
                self._originals[id(field)] = item
                if field.type is FieldType.LIST:
                    members[field.name] = item.customize(min_occurs=0, max_occurs="unbounded", nillable=False,
                                                         doc=field.description or None)
                else:
                    required = (field.required or field.nillable) and not optional_here
                    members[field.name] = item.customize(min_occurs=1 if required else 0,
                                                         nillable=field.nillable, doc=field.description or None)
            elif field.is_value_list:
                members[field.name] = scalar_type(field, repeated=True)
            elif field.xml in ("attribute", "text"):
                value = scalar_type(field, required=False)
                if field.enum is not None or field.max_length:
                    # Spyne names a restricted type only for elements; an attribute's would land in no schema
                    value.__namespace__, value.__type_name__ = self.namespace, f"{type_name}_{field.name}Type"
                if field.xml == "attribute":  # <mass unit="kg">: an attribute of this structure's element
                    members[field.name] = XmlAttribute(value, use="required" if field.required else None)
                else:  # ... and its text: simple content beside attributes
                    members[field.name] = XmlData(value)
            else:
                is_key = field.name in self.dataset.key and top
                if is_key:
                    members[field.name] = scalar_type(field, required=True)
                elif optional_here:
                    members[field.name] = scalar_type(field, required=False)
                else:
                    members[field.name] = scalar_type(field)
        return ComplexModel.produce(self.namespace, type_name, members)

    def _converter(self, cls: type[ComplexModel], fields: tuple[Field, ...]) -> Callable[[dict[str, Any]], Any]:
        nested: dict[str, tuple[bool, Callable[[dict[str, Any]], Any]]] = {}
        for field in fields:
            if field.fields is not None:
                # instantiate the original class: Spyne warns on instances of customized ones
                item_cls = self._originals[id(field)]
                nested[field.name] = (field.type is FieldType.LIST, self._converter(item_cls, field.fields))

        def convert(values: dict[str, Any]) -> Any:
            instance = cls()
            for name, value in values.items():
                if value is None:
                    continue
                if name in nested:
                    repeated, inner = nested[name]
                    value = [inner(item) for item in value] if repeated else inner(value)
                setattr(instance, name, value)
            return instance

        return convert

    def to_instance(self, values: dict[str, Any]) -> Any:
        return self._convert(values)

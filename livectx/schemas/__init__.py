"""Schemas as code: each declared source's schema, registered under its subject only by ``schemas apply``.

- :mod:`livectx.schemas.derive`: the schema a source declares (Avro as declared, JSON Schema from the
  columns), its subject and compatibility level;
- :mod:`livectx.schemas.plan`: what the registry holds against that (new / unchanged / new version /
  INCOMPATIBLE), and ``apply``, which refuses an incompatible change;
- :mod:`livectx.schemas.explain`: why a change is incompatible, one readable line per field;
- :mod:`livectx.schemas.client`: a ``SchemaRegistryClient`` from the settings, its errors made readable.
"""

"""The entities livectx features and context are keyed by."""

from feast import Entity, ValueType

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="An end user.")
card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING, description="A payment card.")
merchant = Entity(
    name="merchant",
    join_keys=["merchant_id"],
    value_type=ValueType.STRING,
    description="A merchant accepting card payments.",
)
document = Entity(
    name="document",
    join_keys=["document_id"],
    value_type=ValueType.STRING,
    description="A text item (ticket, review) in the semantic memory.",
)

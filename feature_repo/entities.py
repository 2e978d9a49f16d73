"""The entities the example domain's features and memory are keyed by."""

from feast import Entity, ValueType

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="An end user.")
card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING, description="A payment card.")
merchant = Entity(
    name="merchant",
    join_keys=["merchant_id"],
    value_type=ValueType.STRING,
    description="A merchant accepting card payments.",
)
ticket = Entity(name="ticket", join_keys=["ticket_id"], value_type=ValueType.STRING, description="A support ticket.")
review = Entity(name="review", join_keys=["review_id"], value_type=ValueType.STRING, description="A product review.")
kb_document = Entity(
    name="kb_document", join_keys=["doc_id"], value_type=ValueType.STRING, description="A knowledge-base document."
)

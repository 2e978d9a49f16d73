from livectx.topics import DEAD_LETTER, MODELS, PLATFORM_TOPICS


def test_every_topic_declares_its_retention_policy() -> None:
    names = [t.name for t in PLATFORM_TOPICS]
    assert len(names) == len(set(names))
    for topic in PLATFORM_TOPICS:
        assert topic.partitions >= 1
        assert topic.config["cleanup.policy"] in {"delete", "compact"}
        if topic.config["cleanup.policy"] == "delete":
            assert int(topic.config["retention.ms"]) > 0
            assert "retention.bytes" in topic.config


def test_model_registry_topic_is_compacted_with_tombstone_retention() -> None:
    models = next(t for t in PLATFORM_TOPICS if t.name == MODELS)
    assert models.config["cleanup.policy"] == "compact"
    assert int(models.config["delete.retention.ms"]) >= 24 * 3_600_000
    assert any(t.name == DEAD_LETTER for t in PLATFORM_TOPICS)

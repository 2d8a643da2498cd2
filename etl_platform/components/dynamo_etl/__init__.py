"""The DynamoDB → warehouse pipeline: ``component.py`` declares, one step module per body."""

from .component import DynamoTableEtl, EntityRuleConfig

__all__ = ["DynamoTableEtl", "EntityRuleConfig"]

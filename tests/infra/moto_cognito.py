"""The template's Cognito resources in moto's CloudFormation, which has none of its own.

Each model hands its CloudFormation properties, unchanged, to moto's Cognito API (for these
two resource types the property names are the API's parameter names), so the offline
deploy makes a real (moto) user pool and app client from the template, and Ref gives
their ids as it does on AWS. Import the module to register the models.
"""
from __future__ import annotations

from typing import Any

import boto3
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel


def _cognito(region_name: str) -> Any:
    return boto3.client("cognito-idp", region_name=region_name)


class UserPool(CloudFormationModel):
    def __init__(self, pool_id: str):
        self.physical_resource_id = pool_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return "UserPoolName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPool"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "ProviderName", "ProviderURL", "UserPoolId")

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> "UserPool":
        properties = dict(cloudformation_json["Properties"])
        name = properties.pop("UserPoolName", resource_name)
        pool = _cognito(region_name).create_user_pool(PoolName=name, **properties)["UserPool"]
        return cls(pool["Id"])

    def delete(self, account_id: str, region_name: str) -> None:
        _cognito(region_name).delete_user_pool(UserPoolId=self.physical_resource_id)


class UserPoolClient(CloudFormationModel):
    def __init__(self, pool_id: str, client_id: str):
        self.pool_id = pool_id
        self.physical_resource_id = client_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ClientName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPoolClient"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ClientId", "ClientSecret", "Name")

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> "UserPoolClient":
        properties = dict(cloudformation_json["Properties"])
        pool_id = properties.pop("UserPoolId")
        client = _cognito(region_name).create_user_pool_client(UserPoolId=pool_id, **properties)
        return cls(pool_id, client["UserPoolClient"]["ClientId"])

    def delete(self, account_id: str, region_name: str) -> None:
        cognito = _cognito(region_name)
        try:
            cognito.delete_user_pool_client(UserPoolId=self.pool_id, ClientId=self.physical_resource_id)
        except cognito.exceptions.ResourceNotFoundException:
            pass  # deleted with its pool


parsing.get_model_map.cache_clear()
parsing.get_name_type_map.cache_clear()

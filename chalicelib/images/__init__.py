"""The image record: its attributes, statuses and transitions (`record`), the DynamoDB
adapter that makes every transition a conditional write and keeps the upload quota
(`store`), and what clients see of a record (`views`).

Every other concern reads and changes images only through these three modules.
"""

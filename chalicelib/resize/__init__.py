"""Making thumbnails from uploads: reading the uploads queue's messages (`upload_events`),
the resize step that claims, renders, stores and records an image (`resizer`), and the
sweeper that fails images stuck in processing (`sweeper`).
"""

"""Telling the client: the signed `thumbnails.generated` event, the delivery state machine
(`state`, pure), running it (`delivery`), one HTTP attempt within a deadline (`sender`),
which receiver URLs may be called (`urls`), the SQS task queue (`queue`), each user's
signing secrets (`secrets`) and their attempts budget per host (`budget`).
"""

"""Real peers for tests: DCMTK tools, Orthanc, pynetdicom, and the Celery/AMQP/NATS stand-ins.

Kept free of imports: processes such as a Celery worker import single modules
from this package. The pytest plugins are the modules themselves; see README.md.
"""

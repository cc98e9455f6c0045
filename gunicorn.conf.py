# Production server: one gevent worker holds hundreds of open answer streams cheaply.
import os

bind = f"{os.environ.get('MOYAN_HOST', '127.0.0.1')}:{os.environ.get('MOYAN_PORT', '5000')}"
worker_class = "gevent"
workers = 1
worker_connections = 2000
timeout = 60
graceful_timeout = 2
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'

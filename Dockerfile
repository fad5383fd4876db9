# warpsync service image: `docker build -t warpsync . && docker run --rm -p 5555-5557:5555-5557 -p 9108:9108 warpsync`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libsndfile for soundfile (WAV input of `warpsync pub`); nothing else needs system packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsndfile1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/warpsync

# torch first, pinned to the CPU build from its own index (the default index would pull a multi-GB CUDA build).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY clients/python /opt/warpsync/clients/python
RUN pip install /opt/warpsync/clients/python

COPY pyproject.toml README.md /opt/warpsync/
COPY service /opt/warpsync/service
COPY configs /opt/warpsync/configs
RUN pip install /opt/warpsync

RUN useradd --system --uid 10001 --no-create-home warpsync

# numba caches compiled kernels beside their source (root's here) or in the user's home (none): give it a
# directory of its own, and fill it at build time, so that a container starts without compiling (the speech
# aligner's kernels took 4.8 s; warpsync/_numba_cache.py would otherwise fall back to a temporary directory).
ENV NUMBA_CACHE_DIR=/var/cache/warpsync/numba
RUN mkdir -p /var/cache/warpsync/numba && chown -R warpsync /var/cache/warpsync
USER warpsync
RUN python -c "import warpsync.ingest.finite; from warpsync.speech.config import SpeechConfig; \
from warpsync.speech.stage import SpeechStage; print('warmed up in %.1f s' % SpeechStage(SpeechConfig()).warm_up())"

# ingest (PULL), events (XPUB), control (ROUTER), Prometheus
EXPOSE 5555 5556 5557 9108

# Bind every socket on all interfaces inside the container; SIGTERM (docker stop) drains and exits 0.
STOPSIGNAL SIGTERM
CMD ["warpsync", "serve", \
     "--ingest", "tcp://0.0.0.0:5555", \
     "--publish", "tcp://0.0.0.0:5556", \
     "--control", "tcp://0.0.0.0:5557", \
     "--metrics-port", "9108", \
     "--metrics-host", "0.0.0.0"]

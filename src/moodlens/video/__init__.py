"""Faces in video: frame sources, tracking and smoothing, annotated outputs."""

from .pipeline import OutputPaths as OutputPaths
from .pipeline import VideoOptions as VideoOptions
from .pipeline import VideoProcessor as VideoProcessor
from .sources import VIDEO_SUFFIXES as VIDEO_SUFFIXES
from .sources import CameraSource as CameraSource
from .sources import FolderSource as FolderSource
from .sources import VideoFileSource as VideoFileSource
from .sources import open_source as open_source

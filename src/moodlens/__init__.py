"""moodlens: emotion recognition from faces (and voices), offline, on CPU."""

__version__ = "0.1.0"

from .errors import DataError as DataError
from .errors import InputError as InputError
from .errors import ModelError as ModelError
from .errors import MoodlensError as MoodlensError
from .face.recognizer import FaceRecognizer as FaceRecognizer
from .registry import available_models as available_models
from .registry import load_model as load_model
from .results import Box as Box
from .results import FaceResult as FaceResult
from .results import ImageResult as ImageResult
from .results import Segment as Segment
from .results import VoiceResult as VoiceResult
from .voice.recognizer import VoiceRecognizer as VoiceRecognizer

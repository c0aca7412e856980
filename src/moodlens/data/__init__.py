"""Data recipes: one module per corpus, each returning canonical labels.

Face corpora load into :class:`FaceData` (48x48 uint8 grayscale arrays), the form
the trainer and the evaluator take.
"""

from .facedata import FaceData as FaceData
from .facedata import load_face_data as load_face_data
from .fer2013 import load_fer2013 as load_fer2013
from .ferplus import load_ferplus as load_ferplus
from .folders import load_ckplus as load_ckplus
from .folders import load_image_folder as load_image_folder

# Speech corpora (ravdess, cremad, tess, savee, emodb) load into lists of SpeechItem.
from .speech import SpeechItem as SpeechItem
from .speech import load_speech_corpus as load_speech_corpus
from .speech import speaker_split as speaker_split

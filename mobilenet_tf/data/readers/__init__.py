"""One reader per data source (``folder``, ``unlabelled``, ``tfrecord``, ``tfds``,
``synthetic``), each returning its :class:`~mobilenet_tf.data.readers.base.ImageDataset`;
``mobilenet_tf.data.factory.load_dataset`` picks one from the dataset spec."""

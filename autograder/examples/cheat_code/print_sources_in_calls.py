import inspect


def predict_delta_that_tells(self, states, actions):
    """Print who called, with their source and local variables, then fail as before."""
    for frame_info in inspect.stack()[1:]:
        print(frame_info.filename, frame_info.function, {k: type(v).__name__ for k, v in frame_info.frame.f_locals.items()})
        try:
            print(inspect.getsource(frame_info.frame)[:2000])
        except (OSError, TypeError):
            pass
    raise NotImplementedError()


DeterministicModel.predict_delta = predict_delta_that_tells

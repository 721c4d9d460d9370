"""Quality runs (`train`): configs trained for whole epochs through the one builder, evaluated after
every epoch (test error, NLL, calibration; RMSE and coverage for regression), then on OOD inputs,
under FGSM, and the regression band."""

"""The Streamlit web app's pages and components (app.py at the repository root runs them)."""
